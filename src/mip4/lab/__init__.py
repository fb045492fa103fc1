"""mip4.lab"""
