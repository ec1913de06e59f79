"""What an image's package manager knows, and what its distribution's archive says.

Read offline from a disk image (dpkg's database, rpm's) and from the archive on the host (apt
indexes, .deb files), so checks judge an image against its own package database without
booting it. Imports only `core` and libraries: the checks (validations), the build (a cached
image with pending security updates) and the SBOM all read the same records.
"""
