"""The verdict phase: from every report of a session to one verdict per OS and its reports.

Pure functions over records (no pytest here): the plugin feeds them, the publish step reads
what they write (`reports/results.json`, validated against core's schema).
"""
