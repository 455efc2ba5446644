"""The ``imagegate`` command line: ``serve`` and the admin commands.

Admin commands only write the database, so they take effect on a running gateway's next
request without a restart. ``main`` parses and maps errors to exit statuses;
``commands`` holds one thin function per subcommand over ``imagegate.services``.
"""
