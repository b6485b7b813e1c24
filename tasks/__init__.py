"""Pipeline algorithms as plain functions: no Prefect, Qdrant or Streamlit in here."""
