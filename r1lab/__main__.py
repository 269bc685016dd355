from r1lab.cli import main

raise SystemExit(main())
