"""mip4.security"""
