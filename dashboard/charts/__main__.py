import sys

from dashboard.charts import main

sys.exit(main())
