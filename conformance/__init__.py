"""focalspec.conformance"""
