from focalspec.cli_main import entry

entry()
