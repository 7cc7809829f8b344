/*
 * report.js - draws the page of `memprof report` from the JSON that
 * trace_html.c embeds in #memprof-data: the header and totals, the
 * flamegraphs of live and allocated bytes, the timeline, the top table
 * and the leaks. Loads nothing and logs nothing (only a drawing bug goes to
 * the console); data never goes through innerHTML. When it is done it
 * sets data-ready="yes" on the root element (the tests wait for it).
 */
(function () {
	'use strict';

	var D = JSON.parse(document.getElementById('memprof-data').textContent);
	var S = D.strings;
	var F = D.frames;
	var META = D.meta;
	var TOT = D.totals;

	/* ---- helpers ---- */

	function h(tag, cls, text) {
		var e = document.createElement(tag);
		if (cls)
			e.className = cls;
		if (text !== undefined && text !== null)
			e.textContent = text;
		return e;
	}

	function add(parent, child) {
		parent.appendChild(child);
		return child;
	}

	var UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

	/* Bytes as the CLI prints them (tracemalloc's _format_size). */
	function size(b) {
		var s = b;
		for (var u = 0; u < 5; u++) {
			if (s < 100 && u !== 0)
				return s.toFixed(1) + ' ' + UNITS[u];
			if (s < 10 * 1024 || u === 4)
				return Math.round(s) + ' ' + UNITS[u];
			s /= 1024;
		}
		return b + ' B';
	}

	/* An axis label: v in the biggest unit that the step is a whole
	 * number of ("4 MiB", "12 MiB", "512 KiB"). */
	function axisSize(v, step) {
		var u = 0;
		while (u < 4 && step >= Math.pow(1024, u + 1))
			u++;
		return v ? +(v / Math.pow(1024, u)).toFixed(2) + ' ' + UNITS[u] : '0';
	}

	/* "4,096", Valgrind's way. */
	function num(n) {
		return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
	}

	function pct(v, t) {
		if (!t)
			return '0%';
		var p = (100 * v) / t;
		return (p >= 10 ? p.toFixed(0) : p >= 1 ? p.toFixed(1) : p.toFixed(2)) + '%';
	}

	function plural(n, one, many) {
		return n === 1 ? one : many;
	}

	function base(p) {
		var i = p.lastIndexOf('/');
		return i >= 0 && i + 1 < p.length ? p.slice(i + 1) : p;
	}

	/* Microseconds as "850 µs", "12.5 ms", "3.20 s", "4.5 min". */
	function dur(us) {
		if (us < 1000)
			return Math.round(us) + ' \u00b5s';
		if (us < 1e6)
			return +(us / 1000).toPrecision(3) + ' ms';
		if (us < 120e6)
			return +(us / 1e6).toPrecision(3) + ' s';
		if (us < 7200e6)
			return +(us / 60e6).toPrecision(3) + ' min';
		return +(us / 3600e6).toPrecision(3) + ' h';
	}

	function frame(i) {
		if (i === undefined || i < 0)
			return null;
		var f = F[i];
		return {
			fn: f[0] >= 0 ? S[f[0]] : null,
			file: f[1] >= 0 ? S[f[1]] : null,
			line: f[2],
			mod: f[3] >= 0 ? S[f[3]] : null,
			addr: f[4]
		};
	}

	/* "leak_cycle (demo.c:37)", as `memprof leaks` prints a frame. */
	function frameText(f) {
		if (!f)
			return '<unknown>';
		var s = f.fn || f.addr || '<unknown>';
		if (f.file)
			s += ' (' + base(f.file) + (f.line ? ':' + f.line : '') + ')';
		else if (f.mod)
			s += ' (' + base(f.mod) + ')';
		return s;
	}

	/* "demo.c:21 in fill_cache", as `memprof top` labels a line. */
	function siteText(f) {
		if (!f)
			return '<unknown>';
		if (f.file)
			return base(f.file) + (f.line ? ':' + f.line : '') + (f.fn ? ' in ' + f.fn : '');
		var m = f.mod ? ' (' + base(f.mod) + ')' : '';
		return (f.fn || f.addr || '<unknown>') + m;
	}

	/* Where a frame is, in full, for tooltips. */
	function whereText(f) {
		if (!f)
			return '';
		var s = f.file ? f.file + (f.line ? ':' + f.line : '') : '';
		if (f.mod)
			s += (s ? ' in ' : '') + base(f.mod);
		return s;
	}

	/* ---- tooltip ---- */

	var tip = h('div', 'tip');

	function showTip(ev, title, lines) {
		tip.textContent = '';
		add(tip, h('div', 't', title));
		lines.forEach(function (l) {
			if (l)
				add(tip, h('div', l.charAt(0) === '\u2192' ? 'm' : null, l));
		});
		tip.style.display = 'block';
		var x = ev.clientX + 14;
		var y = ev.clientY + 16;
		var r = tip.getBoundingClientRect();
		if (x + r.width > window.innerWidth - 4)
			x = Math.max(4, ev.clientX - r.width - 10);
		if (y + r.height > window.innerHeight - 4)
			y = Math.max(4, ev.clientY - r.height - 10);
		tip.style.left = x + 'px';
		tip.style.top = y + 'px';
	}

	function hideTip() {
		tip.style.display = 'none';
	}

	/* ---- page frame ---- */

	var program = META.program || 'unknown program';
	var title = D.title || 'memprof report: ' + program;

	function originText() {
		var s = program + ', pid ' + META.pid + ', ' + (META.trigger || 'unknown') + ' snapshot';
		if (META.name)
			s += " '" + META.name + "'";
		if (META.seq)
			s += ' #' + META.seq;
		return s;
	}

	function card(parent, k, v, s, cls) {
		var c = add(parent, h('div', 'card' + (cls ? ' ' + cls : '')));
		add(c, h('div', 'k', k));
		add(c, h('div', 'v', v));
		if (s)
			add(c, h('div', 's', s));
		return c;
	}

	function buildHeader() {
		var hd = add(document.body, h('header'));
		hd.id = 'summary';
		add(hd, h('h1', null, title));
		var o = originText();
		if (META.start_ms)
			o += ', started ' + new Date(META.start_ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
		o += ', taken ' + dur(META.snapshot_us || 0) + ' after start';
		add(hd, h('div', 'origin', o));
		if (META.argv && META.argv.length)
			add(hd, h('div', 'cmdline', '$ ' + META.argv.join(' ')));
		if (META.sample_rate)
			add(hd, h('div', 'note warn', 'Sampled recording (one allocation per ' + size(META.sample_rate) +
				' on average): the figures are estimates, and there is no leak check.'));
		var cards = add(hd, h('div', 'cards'));
		card(cards, 'Live', size(TOT.live_bytes), num(TOT.live_blocks) + ' ' + plural(TOT.live_blocks, 'block', 'blocks'));
		card(cards, 'Peak', size(TOT.peak_bytes), META.peak_us !== undefined ? 'at ' + dur(META.peak_us) : null);
		card(cards, 'Allocated', size(TOT.alloc_bytes), num(TOT.allocs) + ' ' + plural(TOT.allocs, 'allocation', 'allocations'));
		card(cards, 'Frees', num(TOT.frees), null);
		if (D.leaks) {
			var s = D.leaks.summary;
			var lost = s.definite[0] + s.indirect[0];
			card(cards, 'Leaked', size(lost), num(s.definite[1] + s.indirect[1]) + ' blocks definitely or indirectly lost',
				lost ? 'bad' : null);
			var cy = D.leaks.cycles_total;
			card(cards, 'Leaked cycles', num(cy), null, cy ? 'bad' : null);
		}
	}

	var main;

	function buildNav(items) {
		var nav = add(document.body, h('nav'));
		items.forEach(function (it) {
			var a = add(nav, h('a', null, it[1]));
			a.setAttribute('href', '#' + it[0]);
		});
	}

	function section(id, heading, sub) {
		var s = add(main, h('section'));
		s.id = id;
		add(s, h('h2', null, heading));
		if (sub)
			add(s, h('p', 'note', sub));
		return s;
	}

	/* A part that fails to draw says so in the page, and the rest is
	 * still drawn. */
	function guard(sec, fn) {
		try {
			fn();
		} catch (e) {
			add(sec, h('p', 'error', 'This part of the report could not be drawn: ' + e));
			console.error(e);
		}
	}

	/* ---- flamegraphs ---- */

	var FL = D.flame;
	var nodes = [];

	function buildTree() {
		var a = FL.nodes;
		for (var i = 0; i < a.length; i += 4) {
			var p = a[i] < 0 ? null : nodes[a[i]];
			var n = { parent: p, f: frame(a[i + 1]), v: [a[i + 2], a[i + 3]], kids: [], sorted: [null, null] };
			if (p)
				p.kids.push(n);
			nodes.push(n);
		}
	}

	function boxName(n) {
		if (!n.parent)
			return 'all';
		var f = n.f;
		if (f && f.fn)
			return f.fn;
		return '[' + (f && f.mod ? base(f.mod) : 'unknown') + ']';
	}

	function hashName(s) {
		var x = 2166136261;
		for (var i = 0; i < s.length; i++)
			x = Math.imul(x ^ s.charCodeAt(i), 16777619);
		/* murmur3's finalizer: names that differ in their last
		 * character get far apart colors */
		x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
		x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
		x ^= x >>> 16;
		return (x >>> 0) / 4294967296;
	}

	var ROW = 19;
	var MIN_WIDTH = 0.0005; /* of the zoomed box: under a pixel */

	function Flame(sec, m, what, hue0, hue1, light) {
		this.m = m;
		this.light = light;
		this.what = what;
		this.hue0 = hue0;
		this.hue1 = hue1;
		this.focus = nodes[0];
		var bar = add(sec, h('div', 'toolbar'));
		this.reset = add(bar, h('button', null, 'Reset zoom'));
		this.reset.type = 'button';
		this.search = add(bar, h('input'));
		this.search.type = 'search';
		this.search.placeholder = 'Highlight functions\u2026';
		this.status = add(bar, h('span', 'status'));
		this.box = add(sec, h('div', 'flame'));
		var self = this;
		this.reset.addEventListener('click', function () {
			self.zoom(nodes[0]);
		});
		this.search.addEventListener('input', function () {
			self.highlight();
		});
		this.box.addEventListener('click', function (ev) {
			var n = ev.target.memprofNode;
			if (n)
				self.zoom(n);
		});
		this.box.addEventListener('mousemove', function (ev) {
			var n = ev.target.memprofNode;
			if (n)
				self.tip(ev, n);
			else
				hideTip();
		});
		this.box.addEventListener('mouseleave', hideTip);
		this.render();
	}

	Flame.prototype.kids = function (n) {
		var m = this.m;
		if (!n.sorted[m])
			n.sorted[m] = n.kids.filter(function (k) {
				return k.v[m] > 0;
			}).sort(function (a, b) {
				return b.v[m] - a.v[m] || (boxName(a) < boxName(b) ? -1 : 1);
			});
		return n.sorted[m];
	};

	Flame.prototype.color = function (n) {
		if (!n.parent)
			return 'hsl(220, 8%, 82%)';
		if (!n.f || !n.f.fn)
			return 'hsl(220, 6%, 74%)';
		var r = hashName(n.f.fn);
		var hue = this.hue0 + (this.hue1 - this.hue0) * r;
		return 'hsl(' + hue.toFixed(0) + ', ' + (62 + 20 * r).toFixed(0) + '%, ' +
			(this.light + 10 * (1 - r)).toFixed(0) + '%)';
	};

	Flame.prototype.place = function (n, left, width, row, cls) {
		var d = h('div', 'fn' + (cls ? ' ' + cls : ''), boxName(n));
		d.style.left = left + '%';
		d.style.width = width + '%';
		d.style.top = row * ROW + 'px';
		d.style.background = this.color(n);
		d.memprofNode = n;
		this.box.appendChild(d);
		return d;
	};

	Flame.prototype.render = function () {
		var m = this.m;
		var focus = this.focus;
		this.box.textContent = '';
		this.reset.disabled = !focus.parent;
		if (!nodes[0].v[m]) {
			this.box.style.height = 'auto';
			add(this.box, h('p', 'note', 'No ' + this.what + ' in this snapshot.'));
			return;
		}
		var anc = [];
		for (var a = focus.parent; a; a = a.parent)
			anc.unshift(a);
		var row = 0;
		var self = this;
		anc.forEach(function (n) {
			self.place(n, 0, 100, row++, 'anc');
		});
		var total = focus.v[m];
		var maxRow = row;
		var todo = [[focus, 0, row]];
		while (todo.length) {
			var it = todo.pop();
			var n = it[0];
			var w = n.v[m] / total;
			if (w < MIN_WIDTH)
				continue;
			this.place(n, 100 * it[1], 100 * w, it[2], null);
			if (it[2] > maxRow)
				maxRow = it[2];
			var x = it[1];
			var ks = this.kids(n);
			for (var i = 0; i < ks.length; i++) {
				todo.push([ks[i], x, it[2] + 1]);
				x += ks[i].v[m] / total;
			}
		}
		this.box.style.height = (maxRow + 1) * ROW + 'px';
		this.highlight();
	};

	Flame.prototype.zoom = function (n) {
		this.focus = n;
		hideTip();
		this.render();
	};

	Flame.prototype.tip = function (ev, n) {
		var m = this.m;
		var v = n.v[m];
		var self = v;
		this.kids(n).forEach(function (k) {
			self -= k.v[m];
		});
		var lines = [];
		lines.push(whereText(n.f) ? '\u2192 ' + whereText(n.f) : null);
		lines.push(this.what + ': ' + size(v) + ' (' + pct(v, nodes[0].v[m]) + ' of all)');
		if (this.focus.parent && n !== this.focus && this.isUnder(n))
			lines.push(pct(v, this.focus.v[m]) + ' of ' + boxName(this.focus));
		if (n.parent && self > 0)
			lines.push('in the function itself (or callees left out): ' + size(self));
		lines.push(this.m === 0 ? 'allocated: ' + size(n.v[1]) : 'live: ' + size(n.v[0]));
		lines.push(n === this.focus ? null : '\u2192 click to zoom');
		showTip(ev, boxName(n), lines);
	};

	Flame.prototype.isUnder = function (n) {
		for (var a = n; a; a = a.parent)
			if (a === this.focus)
				return true;
		return false;
	};

	Flame.prototype.highlight = function () {
		var q = this.search.value.trim().toLowerCase();
		var m = this.m;
		var boxes = this.box.children;
		for (var i = 0; i < boxes.length; i++) {
			var n = boxes[i].memprofNode;
			var hit = !!(q && n && n.parent && boxName(n).toLowerCase().indexOf(q) >= 0);
			boxes[i].classList.toggle('hit', hit);
		}
		if (!q) {
			this.status.textContent = this.focus.parent ? 'zoomed on ' + boxName(this.focus) + ': ' +
				size(this.focus.v[m]) + ' (' + pct(this.focus.v[m], nodes[0].v[m]) + ' of all)' : '';
			return;
		}
		/* matched bytes: the outermost matching boxes only, so nested
		 * matches (recursion) count once */
		var sum = 0;
		var todo = [nodes[0]];
		while (todo.length) {
			var n2 = todo.pop();
			if (n2.parent && boxName(n2).toLowerCase().indexOf(q) >= 0) {
				sum += n2.v[m];
				continue;
			}
			for (var k = 0; k < n2.kids.length; k++)
				todo.push(n2.kids[k]);
		}
		this.status.textContent = 'matched: ' + size(sum) + ' (' + pct(sum, nodes[0].v[m]) + ' of all)';
	};

	function flameNote() {
		var s = 'Each box is a function, as wide as the bytes of the call stacks through it; callers above, callees below. ' +
			'Click a box to zoom, Escape to zoom out.';
		if (FL.omitted_nodes)
			s += ' ' + num(FL.omitted_nodes) + ' of ' + num(FL.omitted_nodes + nodes.length) +
				' boxes are under ' + FL.min_share_ppm / 10000 + '% of both totals and left out (' +
				size(FL.omitted_live) + ' live, ' + size(FL.omitted_alloc) +
				' allocated): their bytes count in their callers.';
		return s;
	}

	/* ---- timeline ---- */

	var SVGNS = (function () {
		var d = document.createElement('div');
		d.innerHTML = '<svg>';
		return d.firstChild.namespaceURI;
	})();

	function svg(parent, tag, attrs, text) {
		var e = document.createElementNS(SVGNS, tag);
		for (var k in attrs)
			e.setAttribute(k, attrs[k]);
		if (text !== undefined)
			e.textContent = text;
		parent.appendChild(e);
		return e;
	}

	/* A round step near span / n: 1, 2 or 5 times a power of unit. */
	function niceStep(span, n, unit) {
		var raw = span / n;
		var p = 1;
		while (p * unit <= raw)
			p *= unit;
		while (p > raw && p > 1)
			p /= unit;
		var steps = unit === 1024 ? [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] : [1, 2, 5, 10];
		for (var i = 0; i < steps.length; i++)
			if (p * steps[i] >= raw)
				return p * steps[i];
		return p * unit;
	}

	function buildTimeline(sec) {
		var TL = D.timeline;
		if (!TL || !TL.t.length) {
			add(sec, h('p', 'note', TL ? 'No timeline: the run ended before its first sample.'
				: 'No timeline: this snapshot has no TIME section (it was written by an older memprof).'));
			return;
		}
		var pts = [];
		for (var i = 0; i < TL.t.length; i++)
			pts.push([TL.t[i], TL.bytes[i]]);
		var peak = META.peak_us !== undefined && TOT.peak_bytes ? [META.peak_us, TOT.peak_bytes] : null;
		if (peak) {
			pts.push(peak);
			pts.sort(function (a, b) {
				return a[0] - b[0];
			});
		}
		var tmax = 1;
		var ymax = 1;
		pts.forEach(function (p) {
			tmax = Math.max(tmax, p[0]);
			ymax = Math.max(ymax, p[1]);
		});
		TL.marks.forEach(function (mk) {
			tmax = Math.max(tmax, mk[1]);
		});
		var W = 1000, H = 270, L = 74, R = 16, T = 14, B = 34;
		var ystep = niceStep(ymax, 4, 1024);
		ymax = Math.ceil(ymax / ystep) * ystep;
		var xstep = niceStep(tmax, 8, 10);
		function X(t) {
			return L + ((W - L - R) * t) / tmax;
		}
		function Y(b) {
			return H - B - ((H - B - T) * b) / ymax;
		}
		var root = svg(sec, 'svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
		svg(root, 'title', {}, 'live bytes over time');
		for (var y = 0; y <= ymax + 0.5; y += ystep) {
			svg(root, 'line', { x1: L, x2: W - R, y1: Y(y), y2: Y(y), 'class': y ? 'grid' : 'axis' });
			svg(root, 'text', { x: L - 6, y: Y(y) + 4, 'text-anchor': 'end' }, axisSize(y, ystep));
		}
		for (var x = 0; x <= tmax; x += xstep) {
			svg(root, 'line', { x1: X(x), x2: X(x), y1: H - B, y2: H - B + 4, 'class': 'axis' });
			svg(root, 'text', { x: X(x), y: H - B + 17, 'text-anchor': 'middle' }, dur(x));
		}
		var line = pts.map(function (p) {
			return X(p[0]).toFixed(1) + ',' + Y(p[1]).toFixed(1);
		}).join(' ');
		var first = pts[0], last = pts[pts.length - 1];
		svg(root, 'polygon', {
			points: X(first[0]).toFixed(1) + ',' + Y(0) + ' ' + line + ' ' + X(last[0]).toFixed(1) + ',' + Y(0),
			'class': 'area'
		});
		svg(root, 'polyline', { points: line, 'class': 'line' });
		/* Labels right to left, each only where it does not run into
		 * the one drawn after it; every mark keeps its line and says
		 * which snapshot it is on hover. */
		var free = W;
		TL.marks.slice().reverse().forEach(function (mk) {
			var mx = X(mk[1]);
			var label = mk[0] ? '#' + mk[0] : 'exit';
			if (mk[0] === META.seq)
				label += ' (this one)';
			var ln = svg(root, 'line', { x1: mx, x2: mx, y1: T, y2: H - B, 'class': 'mark' });
			svg(ln, 'title', {}, (mk[0] ? 'snapshot #' + mk[0] : 'exit snapshot') + ' at ' + dur(mk[1]));
			var width = 7 * label.length + 6;
			if (mx > free || mx - width < L)
				return;
			svg(root, 'text', { x: mx - 4, y: T + 10, 'text-anchor': 'end', 'class': 'marklabel' }, label);
			free = mx - width;
		});
		if (peak) {
			svg(root, 'circle', { cx: X(peak[0]), cy: Y(peak[1]), r: 4, 'class': 'peak' });
			svg(root, 'text', {
				x: X(peak[0]) + (X(peak[0]) > W / 2 ? -8 : 8), y: Math.max(T + 10, Y(peak[1]) + 4),
				'text-anchor': X(peak[0]) > W / 2 ? 'end' : 'start', 'class': 'peaklabel'
			}, 'peak ' + size(peak[1]));
		}
		var guide = svg(root, 'line', { x1: 0, x2: 0, y1: T, y2: H - B, 'class': 'guide', visibility: 'hidden' });
		var hit = svg(root, 'rect', { x: L, y: T, width: W - L - R, height: H - B - T, fill: 'transparent' });
		hit.addEventListener('mousemove', function (ev) {
			var r = root.getBoundingClientRect();
			var t = (((ev.clientX - r.left) * W) / r.width - L) * tmax / (W - L - R);
			var lo = 0, hi = pts.length - 1;
			while (lo < hi) {
				var mid = (lo + hi) >> 1;
				if (pts[mid][0] < t)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo > 0 && t - pts[lo - 1][0] < pts[lo][0] - t)
				lo--;
			var p = pts[lo];
			guide.setAttribute('x1', X(p[0]));
			guide.setAttribute('x2', X(p[0]));
			guide.setAttribute('visibility', 'visible');
			showTip(ev, size(p[1]) + ' live', [dur(p[0]) + ' after start', p === peak ? 'the global peak' : null]);
		});
		hit.addEventListener('mouseleave', function () {
			guide.setAttribute('visibility', 'hidden');
			hideTip();
		});
		var n = TL.t.length;
		add(sec, h('p', 'note', num(n) + ' ' + plural(n, 'sample', 'samples') + ' of live bytes over ' +
			dur(TL.t[n - 1]) + ' (every ' + dur(TL.interval_us) + ' at the end)' +
			(peak ? '; the dot is the global peak, which falls between samples' : '') +
			'; dashed lines are the snapshots taken (#N is FILE.N.memprof).'));
	}

	/* ---- top table ---- */

	var COLS = [
		{ name: '#', cls: 'rank' },
		{ name: 'Call site (file:line in function)', cls: 'site', key: 0 },
		{ name: 'Live bytes', key: 1, fmt: size },
		{ name: 'Live blocks', key: 2, fmt: num },
		{ name: 'Allocations', key: 3, fmt: num },
		{ name: 'Allocated', key: 4, fmt: size },
		{ name: 'At peak', key: 5, fmt: size }
	];

	function buildTop(sec) {
		var TP = D.top;
		var rows = TP.entries.map(function (e) {
			var f = frame(e[0]);
			return { e: e, f: f, label: siteText(f) };
		});
		var state = { key: 1, asc: false };
		var table = add(sec, h('table', 'top'));
		var thead = add(add(table, h('thead')), h('tr'));
		var tbody = add(table, h('tbody'));
		var tfoot = add(table, h('tfoot'));
		var ths = COLS.map(function (c) {
			var th = add(thead, h('th', c.cls || null, c.name));
			if (c.key !== undefined) {
				th.title = 'sort by ' + c.name.toLowerCase();
				th.addEventListener('click', function () {
					if (state.key === c.key)
						state.asc = !state.asc;
					else
						state = { key: c.key, asc: c.key === 0 };
					draw();
				});
			}
			return th;
		});

		function draw() {
			var k = state.key;
			var dir = state.asc ? 1 : -1;
			rows.sort(function (a, b) {
				var x = k ? a.e[k] : a.label, y = k ? b.e[k] : b.label;
				if (x !== y)
					return (x < y ? -1 : 1) * dir;
				return b.e[1] - a.e[1] || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
			});
			ths.forEach(function (th, i) {
				th.classList.toggle('sorted', COLS[i].key === k);
				th.classList.toggle('asc', COLS[i].key === k && state.asc);
			});
			var max = 0;
			if (k)
				rows.forEach(function (r) {
					max = Math.max(max, r.e[k]);
				});
			tbody.textContent = '';
			var frag = document.createDocumentFragment();
			rows.forEach(function (r, i) {
				var tr = add(frag, h('tr'));
				add(tr, h('td', 'rank', String(i + 1)));
				var site = add(tr, h('td', 'site', r.label));
				var w = whereText(r.f);
				if (w)
					site.title = w;
				for (var c = 2; c < COLS.length; c++) {
					var td = add(tr, h('td', null, COLS[c].fmt(r.e[COLS[c].key])));
					if (COLS[c].key === k && max) {
						td.className = 'cur';
						td.style.backgroundSize = ((100 * r.e[k]) / max).toFixed(1) + '% 100%';
					}
				}
			});
			tbody.appendChild(frag);
		}

		var rest = TP.groups - rows.length;
		if (rest > 0) {
			var tr = add(tfoot, h('tr'));
			add(tr, h('td', null, ''));
			add(tr, h('td', 'site', num(rest) + ' other call ' + plural(rest, 'site', 'sites') + ' (not in this page)'));
			for (var c = 2; c < COLS.length; c++)
				add(tr, h('td', null, COLS[c].fmt(TP.rest[COLS[c].key - 1])));
		}
		var tot = add(tfoot, h('tr', 'total'));
		add(tot, h('td', null, ''));
		add(tot, h('td', 'site', 'total'));
		[size(TOT.live_bytes), num(TOT.live_blocks), num(TOT.allocs), size(TOT.alloc_bytes), size(TOT.peak_bytes)]
			.forEach(function (v) {
				add(tot, h('td', null, v));
			});
		draw();
	}

	function topNote() {
		var TP = D.top;
		var s = num(TP.groups) + ' call ' + plural(TP.groups, 'site', 'sites') + ', grouped by line, as ' +
			"'memprof top' shows them. Click a column to sort. Live bytes and blocks are those of this " +
			'snapshot; allocations count since the start; at peak is what the site held at the global peak.';
		if (TP.entries.length < TP.groups)
			s += ' This page holds the ' + num(TP.entries.length) + ' sites that are among the 250 biggest by some column.';
		return s;
	}

	/* ---- leaks ---- */

	var KINDS = [
		['definite', 'definitely lost'],
		['indirect', 'indirectly lost'],
		['possible', 'possibly lost'],
		['reachable', 'still reachable'],
		['suppressed', 'suppressed']
	];

	function amount(bytes, blocks) {
		return num(bytes) + ' bytes' + (blocks !== 1 ? ' in ' + num(blocks) + ' blocks' : '');
	}

	function stackList(parent, st) {
		var ol = add(parent, h('ol', 'stack'));
		st.frames.forEach(function (fi, i) {
			var li = add(ol, h('li'));
			add(li, h('span', 'w', i ? 'by ' : 'at '));
			add(li, document.createTextNode(frameText(frame(fi))));
		});
		if (!st.frames.length)
			add(add(ol, h('li')), document.createTextNode('at <unknown>'));
		if (st.nframes > st.frames.length)
			add(ol, h('li', 'note', '\u2026 ' + num(st.nframes - st.frames.length) + ' more frames'));
		return ol;
	}

	function buildLeaks(sec) {
		var L = D.leaks;
		if (!L) {
			add(sec, h('p', 'note', D.leaks_missing === 'sampled'
				? 'No leak report: a sampled recording has no heap graph. Record without --sample-rate to see leaks.'
				: 'No leak report: this snapshot has no heap graph (recorded with --leak-check=no, or not an exit snapshot).'));
			return;
		}
		var sum = add(sec, h('table', 'summary'));
		var hr = add(add(sum, h('thead')), h('tr'));
		['Leak summary', 'Bytes', 'Blocks', 'Loss records'].forEach(function (t) {
			add(hr, h('th', null, t));
		});
		var sb = add(sum, h('tbody'));
		KINDS.forEach(function (k) {
			var tr = add(sb, h('tr'));
			add(tr, h('td', null, k[1]));
			add(tr, h('td', null, num(L.summary[k[0]][0])));
			add(tr, h('td', null, num(L.summary[k[0]][1])));
			add(tr, h('td', null, num(L.records_total[k[0]])));
		});
		var cb = 0, cbl = 0;
		L.cycles.forEach(function (c) {
			cb += c.bytes;
			cbl += c.blocks;
		});
		var ctr = add(sb, h('tr'));
		add(ctr, h('td', null, 'leaked cycles: ' + num(L.cycles_total)));
		add(ctr, h('td', null, num(cb)));
		add(ctr, h('td', null, num(cbl)));
		add(ctr, h('td', null, ''));
		if (L.threads_unscanned)
			add(sec, h('p', 'warn', 'Warning: ' + L.threads_unscanned + ' ' + plural(L.threads_unscanned, 'thread', 'threads') +
				' could not be stopped: blocks only they pointed to look lost, so leaks may be over-reported.'));

		var cyc = add(sec, h('div'));
		cyc.id = 'cycles';
		add(cyc, h('h3', null, 'Leaked cycles'));
		add(cyc, h('p', 'note', 'Lost blocks that point to each other, members in cycle order: each points to the next, ' +
			'the last back to the first.'));
		if (!L.cycles.length)
			add(cyc, h('p', null, 'No leaked cycles.'));
		L.cycles.forEach(function (c, i) {
			var d = add(cyc, h('div', 'cycle' + (c.is_root ? '' : ' inner')));
			var head = add(d, h('div', 'head', 'Leaked cycle #' + (i + 1) + ': ' + num(c.bytes) + ' bytes in ' +
				num(c.blocks) + ' ' + plural(c.blocks, 'block', 'blocks') + ' '));
			add(head, h('span', 's', '(' + (c.is_root ? 'no pointer from outside the cycle'
				: 'indirectly lost: other lost blocks point into it') +
				(c.retained_bytes > c.bytes ? '; retains ' + num(c.retained_bytes) + ' bytes' : '') + ')'));
			var ol = add(d, h('ol', 'members'));
			c.members.forEach(function (mb, k) {
				var li = add(ol, h('li'));
				add(li, h('span', 'arrow', k ? '\u2192' : ''));
				add(li, h('span', 'amt', amount(mb.bytes, mb.blocks)));
				add(li, h('span', 'site', frameText(frame(mb.frames[0]))));
				var det = add(li, h('details'));
				add(det, h('summary', null, 'stack'));
				stackList(det, mb);
			});
			if (c.nmembers > c.members.length)
				add(add(ol, h('li', 'note')), document.createTextNode('\u2026 ' + num(c.nmembers - c.members.length) +
					' more members'));
			var back = add(ol, h('li', 'note'));
			add(back, h('span', 'arrow', '\u21a9'));
			add(back, document.createTextNode(c.blocks === 1 ? 'back to itself' : 'back to the first'));
		});
		if (L.cycles_total > L.cycles.length)
			add(cyc, h('p', 'note', 'The ' + num(L.cycles_total - L.cycles.length) + ' smaller cycles are not in this page.'));

		var recs = add(sec, h('div'));
		recs.id = 'records';
		add(recs, h('h3', null, 'Loss records'));
		add(recs, h('p', 'note', 'Blocks of one kind allocated by one stack, the biggest first, numbered as ' +
			"'memprof leaks' numbers them. The kinds shown at first are Valgrind's default."));
		var shown = { definite: true, possible: true, indirect: false, reachable: false, suppressed: false };
		var bar = add(recs, h('div', 'kinds'));
		var list = h('div', 'records');
		KINDS.forEach(function (k) {
			var lab = add(bar, h('label'));
			var cbx = add(lab, h('input'));
			cbx.type = 'checkbox';
			cbx.checked = shown[k[0]];
			add(lab, document.createTextNode(' ' + k[1] + ' (' + num(L.records_total[k[0]]) + ')'));
			cbx.addEventListener('change', function () {
				shown[k[0]] = cbx.checked;
				filter();
			});
		});
		add(recs, list);
		var perKind = {};
		L.records.forEach(function (r) {
			perKind[r.kind] = (perKind[r.kind] || 0) + 1;
			var d = add(list, h('div', 'record k-' + r.kind));
			d.memprofKind = r.kind;
			var kw = KINDS.filter(function (k) {
				return k[0] === r.kind;
			})[0][1];
			var head = add(d, h('div', 'head', num(r.bytes) + ' bytes in ' + num(r.blocks) + ' blocks are ' + kw +
				' in loss record ' + r.record + ' of ' + num(L.loss_records)));
			if (r.kind === 'definite' && r.retained_bytes > r.bytes)
				add(head, h('span', 's', ' (retains ' + num(r.retained_bytes) + ' bytes)'));
			stackList(d, r);
		});
		var none = add(list, h('p', 'note', 'No loss records of the kinds chosen.'));
		var omitted = add(recs, h('p', 'note'));
		function filter() {
			var any = false;
			var left = [];
			for (var i = 0; i < list.children.length; i++) {
				var d = list.children[i];
				if (!d.memprofKind)
					continue;
				d.classList.toggle('hidden', !shown[d.memprofKind]);
				any = any || shown[d.memprofKind];
			}
			none.style.display = any ? 'none' : '';
			KINDS.forEach(function (k) {
				var n = L.records_total[k[0]] - (perKind[k[0]] || 0);
				if (shown[k[0]] && n > 0)
					left.push(num(n) + ' smaller ' + k[1]);
			});
			omitted.textContent = left.length ? 'Not in this page: ' + left.join(', ') + ' loss records.' : '';
		}
		filter();
	}

	/* ---- the page ---- */

	function build() {
		document.title = title;
		buildHeader();
		buildNav([['live', 'Live memory'], ['allocated', 'Allocations'], ['timeline', 'Timeline'],
			['top', 'Top call sites'], ['leaks', 'Leaks']]);
		main = add(document.body, h('main'));
		buildTree();
		var flames = [];
		var s1 = section('live', 'Live memory: ' + size(FL.live) + ' held at the snapshot, by call stack', flameNote());
		guard(s1, function () {
			flames.push(new Flame(s1, 0, 'live', 0, 48, 60));
		});
		var s2 = section('allocated', 'Allocations: ' + size(FL.alloc) + ' allocated since the start, by call stack',
			'The same graph weighted by bytes allocated, freed or not: where the churn is.');
		guard(s2, function () {
			flames.push(new Flame(s2, 1, 'allocated', 180, 230, 70));
		});
		var s3 = section('timeline', 'Timeline of live bytes', null);
		s3.classList.add('timeline');
		guard(s3, function () {
			buildTimeline(s3);
		});
		var s4 = section('top', 'Top call sites', topNote());
		guard(s4, function () {
			buildTop(s4);
		});
		var s5 = section('leaks', 'Leaks', D.leaks ? "Blocks live at exit classified like Valgrind's Memcheck, " +
			"as 'memprof leaks' does, and the leaked cycles." : null);
		guard(s5, function () {
			buildLeaks(s5);
		});
		var ft = add(document.body, h('footer', null, 'Written by memprof report' +
			(META.source ? ' from ' + META.source : '') + '. This page loads nothing: everything is in this file.'));
		ft.id = 'about';
		document.body.appendChild(tip);
		document.addEventListener('keydown', function (ev) {
			if (ev.key === 'Escape')
				flames.forEach(function (f) {
					if (f.focus.parent)
						f.zoom(nodes[0]);
				});
		});
		document.documentElement.setAttribute('data-ready', 'yes');
	}

	build();
})();
