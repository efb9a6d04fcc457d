from wpcdc.cli import main

main()
