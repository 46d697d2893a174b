"""Follow SEMC's QC verdicts from the acquisition side (see semc/events/client_example.py for the details).

    python examples/leginon_verdicts.py --url amqp://leginon:secret@broker:5672/semc \
        --session 26nov23a --queue leginon.krios1.verdicts --exposures
"""

import sys

from semc.events.client_example import main

if __name__ == "__main__":
    sys.exit(main())
