"""Read-only views of the results database: the Streamlit app (``streamlit run dashboard``)
and the charts the README shows (``python -m dashboard.charts``). Never imports torch."""
