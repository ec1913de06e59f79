"""Where a built artifact boots for the checks: XCP-ng through XAPI, or QEMU on this machine."""
