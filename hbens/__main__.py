from hbens.cli import main

main()
