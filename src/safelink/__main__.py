from safelink.cli import main

raise SystemExit(main())
