# The two front-door commands (see README.md).
.PHONY: test install demo

install:  ## install system packages and the project (editable) with its test extras
	bash scripts/install.sh

test:  ## install, start MariaDB, run the whole test suite on SQLite and on MariaDB, stop
	bash scripts/test.sh

demo:  ## install, then `semc demo`: a live simulated session processed by the daemon, with a summary
	bash scripts/demo.sh
