from filmroll.cli.main import main

main()
