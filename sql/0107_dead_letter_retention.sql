-- Retention of dead letters, the same on both editions. dead_letters stays a plain table
-- (0001: it needs its primary key for inspection and deletion by id), so no TimescaleDB
-- retention policy or drop_chunks applies to it. The service calls this function at start
-- and every hour with its configured retention (dead_letters.retention_days, default 30
-- days); an operator may call it too. The per-hour cap of every collector bounds what one
-- call deletes: about one hour of dead letters, found through dead_letters_received_idx.

CREATE FUNCTION tcpd_prune_dead_letters(keep INTERVAL, dead_letters REGCLASS DEFAULT 'dead_letters')
RETURNS BIGINT
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    deleted BIGINT;
BEGIN
    IF keep IS NULL OR keep <= INTERVAL '0 seconds' THEN
        RAISE EXCEPTION 'dead letter retention must be a positive interval, got %', keep
            USING HINT = 'set dead_letters.retention_days in config/database.json to 1 or more';
    END IF;
    EXECUTE format('DELETE FROM %s WHERE received_at < now() - $1', dead_letters) USING keep;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$$;
