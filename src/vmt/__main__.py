from vmt.cli import main

main()
