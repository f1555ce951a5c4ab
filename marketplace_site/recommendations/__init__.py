"""The client of the recommender service: deadline, retries, breaker, fallback."""
