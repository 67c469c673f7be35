import { describe, expect, it } from 'vitest';
import { JobSlots } from '../../../lib/engine/scheduler.js';

describe('JobSlots', () => {
  it('never hands out more slots than it has', async () => {
    const slots = new JobSlots(2);
    let running = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        await slots.acquire(1);
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running -= 1;
        slots.release();
      }),
    );
    expect(most).toBe(2);
  });

  it('serves a resuming rule first, then the deepest waiter, FIFO among equals', async () => {
    const slots = new JobSlots(1);
    await slots.acquire(1);
    const order: string[] = [];
    const waiters = [
      slots.acquire(1).then(() => order.push('shallow-1')),
      slots.acquire(3).then(() => order.push('deep')),
      slots.acquire(1).then(() => order.push('shallow-2')),
      slots.acquire(JobSlots.RESUMING).then(() => order.push('resuming')),
    ];
    for (let i = 0; i < 4; i += 1) {
      slots.release();
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(waiters);
    expect(order).toEqual(['resuming', 'deep', 'shallow-1', 'shallow-2']);
  });
});
