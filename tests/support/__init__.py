"""Test helpers that are neither fixtures nor tests: private servers, writer processes."""
