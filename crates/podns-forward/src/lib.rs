//! Forwarding: queries for names outside the served zones go to upstream resolvers.
