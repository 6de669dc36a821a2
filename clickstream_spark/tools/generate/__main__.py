import sys

from clickstream_spark.tools.generate.cli import main

sys.exit(main())
