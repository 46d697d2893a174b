# The two front-door commands (see README.md).
.PHONY: test install demo

install:  ## install system packages and the project (editable) with its test extras
	bash scripts/install.sh

test:  ## install, start MariaDB, run the whole test suite on SQLite and on MariaDB, stop
	bash scripts/test.sh

demo:  ## install, simulate a small session and process it with the daemon (the main job)
	bash scripts/demo.sh
