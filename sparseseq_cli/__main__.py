from sparseseq_cli.cli import main

main()
