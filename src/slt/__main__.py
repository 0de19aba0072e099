from slt.cli.main import run

run()
