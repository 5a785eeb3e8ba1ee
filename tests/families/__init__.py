"""Model families defined outside the package, for the bring-your-own-checkpoint contract test."""
