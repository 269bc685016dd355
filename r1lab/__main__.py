from r1lab.cli import main

if __name__ == "__main__":  # vLLM may start its engine in a subprocess that imports this module
    raise SystemExit(main())
