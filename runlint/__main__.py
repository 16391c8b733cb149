from runlint.cli import main

main()
