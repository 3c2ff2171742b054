from stillmoving.cli import main

main()
