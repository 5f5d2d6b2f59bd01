"""focalspec.reports"""
