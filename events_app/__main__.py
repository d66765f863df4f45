from events_app.cli import main

main()
