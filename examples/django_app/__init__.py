"""A minimal Django project on rig_sync: no database, no migrations, three views."""
