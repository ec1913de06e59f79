"""Disk formats the platforms boot and the publisher ships (XVA for XCP-ng).

Below both platforms/ and publish/ and above core only, so a format is read and written by one
implementation that neither side has to import from the other.
"""
