"""The customer and account pages sales staff work in all day."""
