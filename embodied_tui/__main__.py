from embodied_tui.cli import main

main()
