"""focalspec.reference"""
