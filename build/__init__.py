"""The build phase: catalog, Packer runner, artifact cache, build-once coordination.

Named for the pipeline phase. Beware: PyPA's `build` package has the same import name; it is
never installed in this project's environment and never imported in-process.
"""
