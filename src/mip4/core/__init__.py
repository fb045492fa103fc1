"""mip4.core"""
