//! A Fenwick (binary indexed) tree over the key count of each slot table: O(log n) updates and
//! O(log n) "which table holds the r-th key", so RANDOMKEY is uniform over keys.

pub struct Fenwick {
    tree: Vec<u32>,
}

impl Fenwick {
    pub fn new(n: usize) -> Fenwick {
        Fenwick {
            tree: vec![0; n + 1],
        }
    }

    pub fn add(&mut self, i: usize, by: u32) {
        let mut i = i + 1;
        while i < self.tree.len() {
            self.tree[i] += by;
            i += i & i.wrapping_neg();
        }
    }

    pub fn sub(&mut self, i: usize, by: u32) {
        let mut i = i + 1;
        while i < self.tree.len() {
            self.tree[i] -= by;
            i += i & i.wrapping_neg();
        }
    }

    /// The table holding the `r`-th key (0-based, `r` below the total) and its position there.
    pub fn find(&self, mut r: usize) -> (usize, usize) {
        let n = self.tree.len() - 1;
        let mut pos = 0;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && (self.tree[next] as usize) <= r {
                pos = next;
                r -= self.tree[next] as usize;
            }
            step >>= 1;
        }
        (pos, r)
    }
}

#[cfg(test)]
mod tests {
    use super::Fenwick;

    /// `find` maps every rank to the table and offset that a linear walk gives.
    #[test]
    fn find_matches_linear_walk() {
        let sizes = [0u32, 3, 0, 0, 5, 1, 0, 2, 7];
        let mut f = Fenwick::new(sizes.len());
        for (i, &s) in sizes.iter().enumerate() {
            f.add(i, s);
        }
        let mut r = 0;
        for (i, &s) in sizes.iter().enumerate() {
            for within in 0..s as usize {
                assert_eq!(f.find(r), (i, within));
                r += 1;
            }
        }
        f.sub(8, 7);
        assert_eq!(f.find(r - 8), (7, 1));
    }
}
