"""The domain: a movement's halves, the envelope as it arrives, the outcome vocabulary and the
decision rules. Pure: no I/O, nothing imported from the rest of `common`."""
