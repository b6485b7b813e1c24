"""The Streamlit dashboard (`smarttrace dashboard`): person search and a person's appearances."""
