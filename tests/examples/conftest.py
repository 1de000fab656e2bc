import os
import sys

# the helpers shared with the python suite
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
