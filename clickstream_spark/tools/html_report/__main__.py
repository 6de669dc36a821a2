import sys

from clickstream_spark.tools.html_report.cli import main

sys.exit(main())
