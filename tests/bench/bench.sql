-- bench.sql - the sqlite3 workload of 'make bench': run on :memory: with
-- output to /dev/null. 200k rows inserted in one transaction into a table
-- with two indexes, then queries that sort, group and join, an UPDATE and
-- a DELETE. Deterministic: no random() or randomblob().
CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL);
CREATE INDEX item_name ON item(name);
CREATE INDEX item_grp ON item(grp, val);
BEGIN;
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 200000)
INSERT INTO item (name, grp, val)
  SELECT printf('item-%08d-%08X', (n * 7919) % 200003, (n * 2654435761) % 4294967296),
         n % 1000, (n * 31337) % 100000 / 7.0
  FROM seq;
COMMIT;
SELECT grp, count(*), avg(val), max(name) FROM item GROUP BY grp ORDER BY 3 DESC LIMIT 10;
SELECT count(*) FROM item WHERE name LIKE 'item-0001%';
SELECT a.grp, count(*) FROM item a JOIN item b ON a.id = b.id + 1 AND a.grp = b.grp + 1
  GROUP BY a.grp ORDER BY 2 DESC LIMIT 5;
SELECT group_concat(name, ',') FROM (SELECT name FROM item ORDER BY val DESC LIMIT 1000);
UPDATE item SET name = upper(name) WHERE grp < 100;
DELETE FROM item WHERE grp % 3 = 0;
SELECT count(*), sum(length(name)) FROM item;
