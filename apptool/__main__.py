"""``python -m apptool`` is the same as the ``apptool`` command."""

from apptool.cli import main

if __name__ == "__main__":
    main()
