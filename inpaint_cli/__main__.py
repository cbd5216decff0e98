from inpaint_cli.cli import main

main()
