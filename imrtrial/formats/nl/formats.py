"""Dutch pages show dates as dd-mm-jjjj (30-11-2026), the form Dutch forms and letters use, with
the leading zeros Django's own Dutch short format (j-n-Y) drops, so a column of dates lines up.
The pages write dates with SHORT_DATE_FORMAT / SHORT_DATETIME_FORMAT; data (exports, the audit
trail's times, date inputs) stay ISO."""

from django.conf.locale.nl.formats import *  # noqa: F403

SHORT_DATE_FORMAT = "d-m-Y"
SHORT_DATETIME_FORMAT = "d-m-Y H:i"
