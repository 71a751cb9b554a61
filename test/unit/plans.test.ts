import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { unboundedIndexScans } from '../support/plans';

// Plan fragments as PostgreSQL 15 prints them: the use batch before and after its state guard became a parameter, and a bitmap lookup by id.
const WHOLE = `Nested Loop  (cost=0.12..8.38 rows=1 width=482)
  Join Filter: (((x.user_id)::text = v_1.user_id) AND ((x.order_id)::text = v_1.order_id))
  ->  Index Scan using user_raffle_order_000_one_open on user_raffle_order_000 x  (cost=0.12..8.14 rows=1 width=470)
        Filter: ((order_state)::text = 'create'::text)
  ->  CTE Scan on v v_1  (cost=0.00..0.22 rows=1 width=248)
        Filter: (suffix = '000'::text)`;
const BOUNDED = `Nested Loop  (cost=0.14..8.39 rows=1 width=482)
  ->  CTE Scan on v v_1  (cost=0.00..0.22 rows=1 width=248)
        Filter: (suffix = '000'::text)
  ->  Index Scan using user_raffle_order_000_order_id_key on user_raffle_order_000 x  (cost=0.14..8.16 rows=1 width=470)
        Index Cond: ((order_id)::text = v_1.order_id)
        Filter: (((order_state)::text = $6) AND (v_1.user_id = (user_id)::text))
  ->  Bitmap Heap Scan on task  (cost=4.17..11.28 rows=3 width=6)
        Recheck Cond: (id = ANY ($1))
        ->  Bitmap Index Scan on task_pkey  (cost=0.00..4.17 rows=3 width=0)
              Index Cond: (id = ANY ($1))`;

test('an index scan with no index condition is reported, one with a condition is not', () => {
  assert.equal(unboundedIndexScans(WHOLE), ['Index Scan using user_raffle_order_000_one_open on user_raffle_order_000 x  (cost=0.12..8.14 rows=1 width=470)']);
  assert.equal(unboundedIndexScans(BOUNDED), []);
  assert.equal(unboundedIndexScans('->  Index Scan Backward using task_pkey on task t\n      Filter: (state = $1)'), ['Index Scan Backward using task_pkey on task t']);
  assert.equal(unboundedIndexScans('Bitmap Index Scan on task_pending_idx  (cost=0.00..4.13 rows=2 width=0)'), ['Bitmap Index Scan on task_pending_idx  (cost=0.00..4.13 rows=2 width=0)']);
});

test.run();
