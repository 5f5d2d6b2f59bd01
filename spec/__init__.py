"""focalspec.spec"""
