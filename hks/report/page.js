/* hks search report: draws every chart and the trials table from the JSON embedded in the page.
   Plain JavaScript over Plotly (embedded before this script); nothing is fetched. window.hksReport
   tells tests and benchmarks when the page is ready and whether it will reload itself. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('hks-data').textContent);
  var M = D.meta, T = D.trials || {}, HP = T.hp || [], P = D.pending || [];
  var N = (T.n || []).length;
  var GL = N > 1500;  // WebGL scatter beyond this: SVG slows down with many points
  var SCATTER = GL ? 'scattergl' : 'scatter';
  var CONFIG = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ['select2d', 'lasso2d'],
                displayModeBar: window.innerWidth < 600 ? false : 'hover'};  // on a phone it covers the legend
  // the search's metric: validation fine accuracy (higher is better), or a custom objective's loss
  var ACC = M.metric || 'validation fine accuracy', SHORT = M.metric_short || 'val fine acc';
  var HIGHER = M.higher_better !== false;
  function better(a, b) { return HIGHER ? a > b : a < b; }
  var report = window.hksReport = {ready: false, refreshScheduled: false, selected: null, drawn: [], lazy: []};
  var byNumber = {};
  var i;
  for (i = 0; i < N; i++) byNumber[T.n[i]] = {index: i};
  P.forEach(function (p, j) { byNumber[p.n] = {pending: j}; });

  // --- formatting -------------------------------------------------------------------------------
  function fmt(v) {
    if (v === null || v === undefined) return 'None';
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
    return String(v);
  }
  function esc(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  }
  function hpText(h, i) { return h.kind === 'categorical' ? h.labels[h.values[i]] : fmt(h.values[i]); }
  function hpPos(h, i) {
    var v = h.values[i];
    if (h.kind === 'categorical') return v;
    if (v === null) return h.none_at;
    return h.log ? Math.log10(v) : v;
  }
  function jitter(h, i) {  // categories spread a little, the same way on every draw
    return h.kind === 'categorical' ? (((i * 2654435761) % 1000) / 1000 - 0.5) * 0.3 : 0;
  }
  function hpAxis(h) {
    var low = Math.min.apply(null, h.ticks), high = Math.max.apply(null, h.ticks);
    var pad = h.kind === 'categorical' ? 0.5 : Math.max((high - low) * 0.08, 1e-9);
    return {tickvals: h.ticks, ticktext: h.labels, range: [low - pad, high + pad], zeroline: false,
            title: {text: h.name + (h.log ? ' (log)' : '')}, automargin: true};
  }
  var hoverCache = [];
  function hover(i) {
    if (hoverCache[i]) return hoverCache[i];
    var s = '<b>trial ' + T.n[i] + '</b> (' + statusText(i) + ')';
    if (T.acc[i] !== null) s += '<br>' + SHORT + ' ' + fmt(T.acc[i]);
    else if (T.status[i] === 'pruned') s += '<br>pruned at epoch ' + fmt(T.pruned_at[i]) + ', reached ' + fmt(T.reached[i]);
    else s += '<br>failed: ' + esc(T.error_type[i] || 'error');
    if (T.coarse[i] !== null) s += '<br>val coarse acc ' + fmt(T.coarse[i]);
    s += '<br>' + fmt(T.epochs[i]) + ' epochs, ' + fmt(T.params[i]) + ' parameters, ' + fmt(T.seconds[i]) + ' s';
    HP.forEach(function (h) { s += '<br>' + esc(h.name) + ': ' + esc(hpText(h, i)); });
    hoverCache[i] = s;
    return s;
  }
  function pendingHover(p) {
    var s = '<b>trial ' + p.n + '</b> (' + p.state + (p.worker ? ' on ' + esc(p.worker) : '') + ')';
    if (p.epoch) s += '<br>epoch ' + p.epoch + ', val fine acc ' + fmt(p.val_acc);
    Object.keys(p.point).forEach(function (k) { s += '<br>' + esc(k) + ': ' + esc(p.point[k]); });
    return s;
  }
  function indices(test) { var out = []; for (var i = 0; i < N; i++) if (test(i)) out.push(i); return out; }
  // a pruned trial paused at its rung (--prune-pause) keeps its checkpoint and may still be resumed
  function statusText(i) { return T.paused && T.paused[i] ? 'paused' : T.status[i]; }
  var OK = indices(function (i) { return T.status[i] === 'ok'; });
  var PRUNED = indices(function (i) { return T.status[i] === 'pruned'; });
  var FAILED = indices(function (i) { return T.status[i] === 'fail'; });
  var MAX_SHOWN = 2000;  // slices, pairs and parallel coordinates draw a random sample beyond this
  var LAZY_FROM = 300;  // from this many trials, charts below the first screen are drawn when scrolled to
  function sample(idx, size) {
    if (idx.length <= size) return idx;
    var seed = 12345, picked = idx.slice();
    for (var k = picked.length - 1; k > 0; k--) {  // seeded Fisher-Yates: the same sample on every reload
      seed = (seed * 1103515245 + 12345) % 2147483648;
      var j = seed % (k + 1), tmp = picked[k];
      picked[k] = picked[j];
      picked[j] = tmp;
    }
    return picked.slice(0, size).sort(function (a, b) { return a - b; });
  }
  var OK_SHOWN = sample(OK, MAX_SHOWN), PRUNED_SHOWN = sample(PRUNED, MAX_SHOWN / 4);
  function sampleNote(id, withPruned) {
    var el = document.getElementById(id);
    if (!el || OK_SHOWN.length === OK.length || el.previousElementSibling && el.previousElementSibling.className === 'sample-note') return;
    var note = document.createElement('p');
    note.className = 'sample-note';
    note.textContent = 'A random sample of ' + OK_SHOWN.length + ' of the ' + OK.length + ' successful trials' +
      (withPruned && PRUNED.length ? ' (and ' + PRUNED_SHOWN.length + ' of the ' + PRUNED.length + ' pruned ones)' : '') +
      ', so that the page stays responsive; the trials table holds them all.';
    el.parentNode.insertBefore(note, el);
  }
  function accColour(idx) {
    return {color: idx.map(function (i) { return T.acc[i]; }), colorscale: 'Viridis', reversescale: !HIGHER,
            size: GL ? 6 : 8, colorbar: {title: {text: SHORT, side: 'right'}, thickness: 12}, showscale: true};
  }
  function layout(extra) {
    var base = {margin: {l: 60, r: 20, t: 30, b: 50}, font: {size: 13}, hovermode: 'closest',
                legend: {orientation: 'h', y: 1.02, yanchor: 'bottom', x: 0}, hoverlabel: {align: 'left'}};
    for (var k in extra) base[k] = extra[k];
    return base;
  }
  function draw(id, traces, lay) {
    var el = document.getElementById(id);
    if (!el) return null;
    Plotly.react(el, traces, lay, CONFIG);
    if (report.drawn.indexOf(id) < 0) report.drawn.push(id);
    return el;
  }
  function onPointClick(el) {
    if (!el || el._hksClick) return;
    el._hksClick = true;
    el.on('plotly_click', function (ev) {
      var n = ev.points && ev.points[0] && ev.points[0].customdata;
      if (n !== undefined && n !== null) select(n, true);
    });
  }

  // --- optimisation history ---------------------------------------------------------------------
  function historyChart() {
    var num = function (idx) { return idx.map(function (i) { return T.n[i]; }); };
    var text = function (idx) { return idx.map(hover); };
    var bestX = [], bestY = [], best = null, worst = null;
    OK.forEach(function (i) { if (worst === null || better(worst, T.acc[i])) worst = T.acc[i]; });
    var failedAt = HIGHER || worst === null ? 0 : worst;  // failed trials sit at the worst end, never among the best
    for (var i = 0; i < N; i++) {
      if (T.acc[i] !== null && (best === null || better(T.acc[i], best))) best = T.acc[i];
      if (best !== null) { bestX.push(T.n[i]); bestY.push(best); }
    }
    var traces = [
      {type: SCATTER, mode: 'markers', name: 'succeeded', x: num(OK), y: OK.map(function (i) { return T.acc[i]; }),
       text: text(OK), hoverinfo: 'text', customdata: num(OK), marker: accColour(OK)},
      {type: 'scatter', mode: 'lines', name: 'best so far', x: bestX, y: bestY, hoverinfo: 'skip',
       line: {shape: 'hv', color: '#d62728', width: 2}}];
    if (PRUNED.length) traces.push({type: SCATTER, mode: 'markers', name: 'pruned', x: num(PRUNED),
      y: PRUNED.map(function (i) { return T.reached[i]; }), text: text(PRUNED), hoverinfo: 'text',
      customdata: num(PRUNED), marker: {symbol: 'triangle-down', color: '#e67e00', size: 9}});
    if (FAILED.length) traces.push({type: SCATTER, mode: 'markers', name: 'failed', x: num(FAILED),
      y: FAILED.map(function () { return failedAt; }), text: text(FAILED), hoverinfo: 'text', customdata: num(FAILED),
      marker: {symbol: 'x', color: '#888', size: 8}});
    if (M.chance && N) traces.push({type: 'scatter', mode: 'lines', name: 'chance level', hoverinfo: 'skip',
      x: [T.n[0], T.n[N - 1]], y: [M.chance, M.chance], line: {dash: 'dot', color: '#999', width: 1}});
    var last = N ? T.n[N - 1] : 1;  // whole trial numbers only
    onPointClick(draw('history-chart', traces, layout({xaxis: {title: {text: 'trial'}, automargin: true, tickformat: 'd',
                                                                dtick: last <= 20 ? 1 : null},
      yaxis: {title: {text: ACC}, automargin: true}})));
  }

  // --- learning curves ----------------------------------------------------------------------------
  function decodeCurves(text) {  // "v,v;v,v;..." in M.curve_keys order (see payload.py)
    if (!text) return null;
    var out = {};
    text.split(';').forEach(function (part, k) {
      if (part) out[M.curve_keys[k]] = part.split(',').map(function (v) { return v === '' ? null : Number(v); });
    });
    return out;
  }
  var curveCache = {};
  function trialCurves(i) {
    if (!(i in curveCache)) curveCache[i] = decodeCurves(T.curves[i]);
    return curveCache[i];
  }
  P.forEach(function (p) { p.curves = decodeCurves(p.curves); });
  function curvesOf(n) {
    var at = byNumber[n];
    if (!at) return null;
    return at.index !== undefined ? trialCurves(at.index) : P[at.pending].curves;
  }
  function lineTrace(name, members, colour, extra) {  // many trials in one trace, separated by gaps
    var x = [], y = [], text = [], ids = [];
    members.forEach(function (m) {
      var values = (m.curves || {}).val_fine_accuracy || [];
      values.forEach(function (v, e) { x.push(e + 1); y.push(v); text.push(m.text + '<br>epoch ' + (e + 1) + ': ' + fmt(v)); ids.push(m.n); });
      x.push(null); y.push(null); text.push(null); ids.push(null);
    });
    var t = {type: x.length > 4000 ? 'scattergl' : 'scatter', mode: 'lines', name: name, x: x, y: y, text: text,
             customdata: ids, hoverinfo: 'text', line: {color: colour, width: 1.5}, opacity: 0.75};
    for (var k in extra) t[k] = extra[k];
    return t;
  }
  var TOP_CURVES = 100;
  function curvesChart() {
    var rank = function (idx, key) { return idx.slice().sort(function (a, b) { return T[key][b] - T[key][a]; }).slice(0, TOP_CURVES); };
    var member = function (i) { return {n: T.n[i], curves: trialCurves(i), text: hover(i)}; };
    var top = rank(OK, 'acc').map(member), pruned = rank(PRUNED, 'reached').map(member);
    var running = P.filter(function (p) { return p.curves; }).map(function (p) { return {n: p.n, curves: p.curves, text: pendingHover(p)}; });
    var traces = [lineTrace(OK.length > TOP_CURVES ? 'the ' + TOP_CURVES + ' best trials' : 'succeeded', top, '#1f77b4')];
    if (pruned.length) {
      traces.push(lineTrace('pruned', pruned, '#e67e00', {}));
      traces.push({type: 'scatter', mode: 'markers', name: 'pruned here', hoverinfo: 'text', marker: {symbol: 'x', size: 10, color: '#e67e00'},
        x: pruned.map(function (m) { return ((m.curves || {}).val_fine_accuracy || []).length; }),
        y: pruned.map(function (m) { var v = (m.curves || {}).val_fine_accuracy || []; return v[v.length - 1]; }),
        text: pruned.map(function (m) { return m.text; }), customdata: pruned.map(function (m) { return m.n; })});
    }
    if (running.length) traces.push(lineTrace('running (so far)', running, '#ff7f0e', {line: {color: '#ff7f0e', width: 2, dash: 'dash'}, opacity: 1}));
    traces.push(selectedTrace());
    if (M.chance) traces.push({type: 'scatter', mode: 'lines', name: 'chance level', hoverinfo: 'skip',
      x: [1, maxEpoch()], y: [M.chance, M.chance], line: {dash: 'dot', color: '#999', width: 1}});
    onPointClick(draw('curves-chart', traces, layout({xaxis: epochAxis(maxEpoch()), yaxis: {title: {text: ACC}, automargin: true}})));
  }
  function maxEpoch() {
    var most = 1;
    (T.epochs || []).concat(P.map(function (p) { return p.epoch; })).forEach(function (e) {
      if (typeof e === 'number' && e > most) most = e;
    });
    return most;
  }
  function epochAxis(epochs) {  // whole epochs only
    return {title: {text: 'epoch'}, tickformat: 'd', dtick: epochs <= 20 ? 1 : null, range: [0.7, epochs + 0.3],
            automargin: true};
  }
  function selectedTrace() {
    var c = report.selected !== null ? curvesOf(report.selected) : null;
    var v = (c && c.val_fine_accuracy) || [];
    return {type: 'scatter', mode: 'lines+markers', name: 'selected trial', hoverinfo: 'skip',
            x: v.map(function (_, e) { return e + 1; }), y: v, line: {color: '#d62728', width: 3}};
  }

  // --- the selected trial -------------------------------------------------------------------------
  function select(n, scroll) {
    if (!byNumber[n]) return;
    report.selected = n;
    var info = trialInfo(n), c = curvesOf(n);
    document.getElementById('selected-title').textContent = 'Trial ' + n + ' (' + info.status + ')' +
      (c && c.val_fine_accuracy ? '' : ': no epoch finished yet');
    var rows = info.rows.map(function (r) {
      var value = r[2] ? '<a href="' + esc(r[2]) + '">' + esc(r[1]) + '</a>' : esc(r[1]);
      return '<tr><th>' + esc(r[0]) + '</th><td class="wrap">' + value + '</td></tr>';
    });
    document.getElementById('selected-settings').innerHTML = '<tbody>' + rows.join('') + '</tbody>';
    if (report.lazy.indexOf('selected-loss') < 0) selectedCharts();  // else drawn when scrolled to
    var curves = document.getElementById('curves-chart');
    if (curves && curves.data) {
      var s = selectedTrace();
      Plotly.restyle(curves, {x: [s.x], y: [s.y]}, [curves.data.length - (M.chance ? 2 : 1)]);
    }
    markSelectedRow();
    saveState();
    if (scroll) document.getElementById('selected-title').scrollIntoView({behavior: 'smooth', block: 'start'});
  }
  function selectedCharts() {  // the selected trial's train and validation curves, whole epochs
    var n = report.selected;
    if (n === null || !byNumber[n]) return;
    var c = curvesOf(n) || {}, epochs = 0, status = trialInfo(n).status;
    Object.keys(c).forEach(function (k) { epochs = Math.max(epochs, c[k].length); });
    var series = function (key, name, colour, dash) {
      var v = c[key] || [];
      return {type: 'scatter', mode: 'lines+markers', name: name, x: v.map(function (_, e) { return e + 1; }), y: v,
              line: {color: colour, dash: dash || 'solid'}, hovertemplate: name + ', epoch %{x}: %{y:.4f}<extra></extra>'};
    };
    var loss = [series('fine_loss', 'train loss', '#1f77b4'), series('val_fine_loss', 'validation loss', '#d62728')];
    var acc = [series('fine_accuracy', 'train accuracy', '#1f77b4'), series('val_fine_accuracy', 'validation accuracy', '#d62728')];
    if (c.val_coarse_accuracy) {
      acc.push(series('coarse_accuracy', 'train coarse accuracy', '#1f77b4', 'dot'));
      acc.push(series('val_coarse_accuracy', 'validation coarse accuracy', '#d62728', 'dot'));
    }
    if (status === 'pruned' && c.val_fine_accuracy) {
      var last = c.val_fine_accuracy.length;
      acc.push({type: 'scatter', mode: 'markers+text', name: 'pruned', x: [last], y: [c.val_fine_accuracy[last - 1]],
                text: ['pruned at epoch ' + last], textposition: 'bottom left', hoverinfo: 'skip',
                marker: {symbol: 'x', size: 14, color: '#e67e00'}});
    }
    var ax = epochAxis(Math.max(epochs, 1));
    draw('selected-loss', loss, layout({xaxis: ax, yaxis: {title: {text: 'loss'}, automargin: true}}));
    draw('selected-acc', acc, layout({xaxis: ax, yaxis: {title: {text: 'accuracy'}, automargin: true}}));
  }
  function trialInfo(n) {
    var at = byNumber[n], rows = [];
    if (at.index !== undefined) {
      var i = at.index;
      rows.push(['status', statusText(i) + (T.status[i] === 'pruned' ? ' at epoch ' + fmt(T.pruned_at[i]) : '')]);
      rows.push([ACC, fmt(T.status[i] === 'pruned' ? T.reached[i] : T.acc[i])]);
      if (T.coarse[i] !== null) rows.push(['validation coarse accuracy', fmt(T.coarse[i])]);
      rows.push(['epochs', fmt(T.epochs[i])], ['parameters', fmt(T.params[i])], ['seconds', fmt(T.seconds[i])],
                ['model', T.model[i]]);
      if (T.json[i]) rows.push(['JSON result', T.json[i].split('/').pop(), T.json[i]]);
      if (T.error[i]) rows.push(['error', T.error[i]]);
      HP.forEach(function (h) { rows.push([h.name, hpText(h, i)]); });
      (D.constant || []).forEach(function (c) { rows.push([c[0], c[1] + ' (every trial)']); });
      return {status: T.status[i], rows: rows};
    }
    var p = P[at.pending];
    rows.push(['status', p.state + (p.worker ? ' on ' + p.worker : '')], ['epoch', fmt(p.epoch)],
              ['validation fine accuracy (last epoch)', fmt(p.val_acc)]);
    Object.keys(p.point).forEach(function (k) { rows.push([k, p.point[k]]); });
    return {status: p.state, rows: rows};
  }

  // --- the trials table ---------------------------------------------------------------------------
  var PAGE = 50;
  var table = {rows: [], columns: [], sort: {key: 'acc', dir: HIGHER ? -1 : 1}, filter: '', status: '', page: 0, only: null};
  function buildRows() {
    var cols = [{key: 'n', label: 'trial'}, {key: 'status', label: 'status'}, {key: 'acc', label: SHORT}];
    if (T.coarse && T.coarse.some(function (v) { return v !== null; })) cols.push({key: 'coarse', label: 'val coarse acc'});
    cols.push({key: 'epochs', label: 'epochs'}, {key: 'params', label: 'parameters'}, {key: 'seconds', label: 'seconds'},
              {key: 'model', label: 'model / worker'});
    HP.forEach(function (h, k) { cols.push({key: 'hp' + k, label: h.name}); });
    table.columns = cols;
    var rows = [], i;
    for (i = 0; i < N; i++) {
      var r = {n: T.n[i], status: T.status[i], shown: statusText(i), acc: T.status[i] === 'pruned' ? T.reached[i] : T.acc[i],
               coarse: T.coarse[i], epochs: T.epochs[i], params: T.params[i], seconds: T.seconds[i], model: T.model[i],
               show: {}, sortKey: {}};
      HP.forEach(function (h, k) { r['hp' + k] = hpText(h, i); r.sortKey['hp' + k] = hpPos(h, i); });
      rows.push(r);
    }
    P.forEach(function (p) {
      var r = {n: p.n, status: p.state, acc: p.val_acc, coarse: null, epochs: p.epoch, params: null, seconds: null,
               model: p.worker || '', show: {}, sortKey: {}};
      HP.forEach(function (h, k) { r['hp' + k] = p.point[h.name] === undefined ? '' : p.point[h.name]; });
      rows.push(r);
    });
    rows.forEach(function (r) {
      r.cells = cols.map(function (c) {
        if (c.key === 'status') return r.shown || r.status;
        return c.key === 'model' || c.key.charAt(0) === 'h' ? String(r[c.key]) : fmt(r[c.key]);
      });
      r.text = r.cells.join(' ').toLowerCase();
    });
    table.rows = rows;
    var head = document.querySelector('#trial-table thead');
    head.innerHTML = '<tr>' + cols.map(function (c) { return '<th data-key="' + c.key + '" tabindex="0" scope="col">' + esc(c.label) + '</th>'; }).join('') + '</tr>';
  }
  function sortValue(r, key) {
    var v = key in r.sortKey ? r.sortKey[key] : r[key];
    return v === null || v === undefined || v === '' ? null : v;
  }
  function renderTable() {
    var f = table.filter.toLowerCase(), key = table.sort.key, dir = table.sort.dir;
    var rows = table.rows.filter(function (r) {
      return (!f || r.text.indexOf(f) >= 0) && (!table.status || r.status === table.status) && (!table.only || table.only[r.n]);
    });
    rows.sort(function (a, b) {
      var x = sortValue(a, key), y = sortValue(b, key);
      if (x === null || y === null) return x === null ? (y === null ? a.n - b.n : 1) : -1;  // None last
      if (x < y) return -dir;
      if (x > y) return dir;
      return a.n - b.n;
    });
    var pages = Math.max(1, Math.ceil(rows.length / PAGE));
    table.page = Math.min(table.page, pages - 1);
    var shown = rows.slice(table.page * PAGE, (table.page + 1) * PAGE);
    document.querySelector('#trial-table tbody').innerHTML = shown.map(function (r) {
      return '<tr data-n="' + r.n + '" class="st-' + esc(r.status) + '">' + r.cells.map(function (c) { return '<td>' + esc(c) + '</td>'; }).join('') + '</tr>';
    }).join('');
    document.querySelectorAll('#trial-table th').forEach(function (th) {
      if (th.getAttribute('data-key') === key) th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    });
    document.getElementById('trial-count').textContent = rows.length + ' of ' + table.rows.length + ' trials' +
      (pages > 1 ? ', page ' + (table.page + 1) + ' of ' + pages : '');
    var pager = document.getElementById('trial-pages');
    pager.innerHTML = pages > 1 ? '<button type="button" data-go="-1"' + (table.page ? '' : ' disabled') + '>previous ' + PAGE +
      '</button><button type="button" data-go="1"' + (table.page < pages - 1 ? '' : ' disabled') + '>next ' + PAGE + '</button>' : '';
    markSelectedRow();
  }
  function markSelectedRow() {
    document.querySelectorAll('#trial-table tbody tr').forEach(function (tr) {
      tr.classList.toggle('selected', Number(tr.getAttribute('data-n')) === report.selected);
    });
  }
  function wireTable() {
    document.querySelector('#trial-table thead').addEventListener('click', function (ev) {
      var th = ev.target.closest('th');
      if (!th) return;
      var key = th.getAttribute('data-key');
      table.sort = {key: key, dir: table.sort.key === key ? -table.sort.dir : (key === 'coarse' || key === 'acc' && HIGHER ? -1 : 1)};
      table.page = 0;
      renderTable();
      saveState();
    });
    document.querySelector('#trial-table tbody').addEventListener('click', function (ev) {
      var tr = ev.target.closest('tr');
      if (tr) select(Number(tr.getAttribute('data-n')), false);
    });
    var filter = document.getElementById('trial-filter'), status = document.getElementById('trial-status');
    filter.value = table.filter;
    status.value = table.status;
    filter.addEventListener('input', function () { table.filter = filter.value; table.page = 0; renderTable(); saveState(); });
    status.addEventListener('change', function () { table.status = status.value; table.page = 0; renderTable(); saveState(); });
    document.getElementById('trial-pages').addEventListener('click', function (ev) {
      var go = ev.target.getAttribute && ev.target.getAttribute('data-go');
      if (go) { table.page += Number(go); renderTable(); }
    });
    document.getElementById('trial-clear').addEventListener('click', function () { parallelChart(); onlyTrials(null); });
  }
  function onlyTrials(set) {
    table.only = set;
    table.page = 0;
    var button = document.getElementById('trial-clear');
    button.hidden = !set;
    renderTable();
  }

  // --- parallel coordinates -----------------------------------------------------------------------
  function parallelChart() {
    var el = document.getElementById('parallel-chart');
    if (!el || !HP.length || !OK.length) return;
    var dims = HP.map(function (h) {
      var ax = hpAxis(h);
      return {label: h.name, values: OK_SHOWN.map(function (i) { return hpPos(h, i); }), tickvals: h.ticks, ticktext: h.labels, range: ax.range};
    });
    dims.push({label: SHORT, values: OK_SHOWN.map(function (i) { return T.acc[i]; })});
    sampleNote('parallel-chart');
    el.style.minWidth = Math.max(dims.length * 95, 300) + 'px';
    var trace = {type: 'parcoords', dimensions: dims, labelangle: dims.length > 8 ? -20 : 0, labelside: 'top',
                 labelfont: {size: 12}, tickfont: {size: 11}, rangefont: {size: 10},
                 line: {color: OK_SHOWN.map(function (i) { return T.acc[i]; }), colorscale: 'Viridis', showscale: true,
                        reversescale: !HIGHER, colorbar: {title: {text: SHORT}, thickness: 12}}};
    draw('parallel-chart', [trace], {margin: {l: 70, r: 90, t: dims.length > 8 ? 110 : 70, b: 30}, font: {size: 12}});
    if (!el._hksRestyle) {
      el._hksRestyle = true;
      el.on('plotly_restyle', function () { onlyTrials(inRanges(el.data[0].dimensions)); });
    }
  }
  function within(v, range) {
    if (!range) return true;
    var ranges = Array.isArray(range[0]) ? range : [range];
    return ranges.some(function (r) { return v >= r[0] && v <= r[1]; });
  }
  function inRanges(dims) {  // every successful trial in the ranges, drawn or not
    if (!dims.some(function (d) { return d.constraintrange; })) return null;
    var set = {};
    OK.forEach(function (i) {
      if (dims.every(function (d, k) { return within(k < HP.length ? hpPos(HP[k], i) : T.acc[i], d.constraintrange); })) set[T.n[i]] = true;
    });
    return set;
  }

  // --- slices, pairs and importance ---------------------------------------------------------------
  function slicesChart() {
    var el = document.getElementById('slices-grid');
    if (!el || !HP.length) return;
    var cols = Math.max(1, Math.min(HP.length, Math.floor(el.clientWidth / 330) || 1)), rows = Math.ceil(HP.length / cols);
    var traces = [], lay = layout({grid: {rows: rows, columns: cols, pattern: 'independent', xgap: 0.12, ygap: 0.45},
                                   showlegend: false, height: rows * 290 + 40, margin: {l: 55, r: 15, t: 20, b: 40}});
    var accs = OK_SHOWN.map(function (i) { return T.acc[i]; });
    var cmin = Math.min.apply(null, accs), cmax = Math.max.apply(null, accs);
    sampleNote('slices-grid', true);
    HP.forEach(function (h, k) {
      var suffix = k ? String(k + 1) : '';
      var points = function (idx, marker) {
        return {type: SCATTER, mode: 'markers', xaxis: 'x' + suffix, yaxis: 'y' + suffix, hoverinfo: 'text',
                x: idx.map(function (i) { return hpPos(h, i) + jitter(h, i); }),
                y: idx.map(function (i) { return T.reached[i]; }), text: idx.map(hover),
                customdata: idx.map(function (i) { return T.n[i]; }), marker: marker};
      };
      traces.push(points(OK_SHOWN, {size: GL ? 5 : 7, color: accs, colorscale: 'Viridis', reversescale: !HIGHER,
                                    cmin: cmin, cmax: cmax}));
      if (PRUNED.length) traces.push(points(PRUNED_SHOWN, {size: GL ? 5 : 7, symbol: 'triangle-down', color: '#e67e00'}));
      var x = hpAxis(h);
      x.title.standoff = 4;
      lay['xaxis' + suffix] = x;
      lay['yaxis' + suffix] = {title: {text: k % cols === 0 ? SHORT : ''}, automargin: true};
    });
    el.style.height = lay.height + 'px';
    onPointClick(draw('slices-grid', traces, lay));
  }
  function pairChart() {
    var xs = document.getElementById('pair-x'), ys = document.getElementById('pair-y');
    if (!xs || HP.length < 2) {
      var box = document.getElementById('pair-chart');
      if (box) box.textContent = 'Needs two varied hyperparameters.';
      return;
    }
    if (!xs.options.length) {
      var names = HP.map(function (h) { return h.name; });
      var ranked = (D.importance.scores || []).map(function (s) { return names.indexOf(s[0]); }).filter(function (k) { return k >= 0; });
      var first = ranked.length > 1 ? ranked : [0, 1];
      [xs, ys].forEach(function (s, which) {
        s.innerHTML = names.map(function (n, k) { return '<option value="' + k + '">' + esc(n) + '</option>'; }).join('');
        s.value = String(first[which]);
        s.addEventListener('change', pairChart);
      });
    }
    var hx = HP[Number(xs.value)], hy = HP[Number(ys.value)];
    var shown = OK_SHOWN;
    sampleNote('pair-chart');
    var trace = {type: SCATTER, mode: 'markers', hoverinfo: 'text', text: shown.map(hover), customdata: shown.map(function (i) { return T.n[i]; }),
      x: shown.map(function (i) { return hpPos(hx, i) + jitter(hx, i); }), y: shown.map(function (i) { return hpPos(hy, i) + jitter(hy, i * 7 + 3); }),
      marker: accColour(shown)};
    onPointClick(draw('pair-chart', [trace], layout({xaxis: hpAxis(hx), yaxis: hpAxis(hy)})));
  }
  function importanceChart() {
    var el = document.getElementById('importance-chart');
    if (!el) return;
    var imp = D.importance, caption = el.nextElementSibling;
    if (caption) caption.textContent = imp.method + ' ' + imp.note;
    if (!imp.scores.length) { el.style.height = 'auto'; el.textContent = imp.note; return; }
    var scores = imp.scores.slice().reverse();
    el.style.height = Math.max(220, scores.length * 28 + 80) + 'px';
    draw('importance-chart', [{type: 'bar', orientation: 'h', y: scores.map(function (s) { return s[0]; }),
      x: scores.map(function (s) { return s[1]; }), error_x: {type: 'data', array: scores.map(function (s) { return s[2]; })},
      hovertemplate: '%{y}: R\u00b2 drop %{x:.4f}<extra></extra>', marker: {color: '#3b75af'}}],
      layout({xaxis: {title: {text: 'importance (drop of R\u00b2 when shuffled)'}, automargin: true}, yaxis: {automargin: true},
              margin: {l: 20, r: 20, t: 20, b: 50}}));
  }

  // --- live search: reload while it runs, keep the reader's place ------------------------------------
  var KEY = 'hks-report:' + location.pathname;
  function saveState() {
    try {
      sessionStorage.setItem(KEY, JSON.stringify({selected: report.selected, sort: table.sort, filter: table.filter,
                                                  status: table.status, scroll: window.scrollY}));
    } catch (e) { /* storage unavailable: the page just starts afresh */ }
  }
  function loadState() {
    try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch (e) { return null; }
  }
  function live() {
    var panel = document.getElementById('live');
    if (M.finished || !panel) { report.refreshScheduled = false; return; }
    var every = Math.max(Number(M.refresh_s) || 30, 1), age = Date.now() / 1000 - M.generated_at;
    if (age > Math.max(3 * every, every + 60)) {
      panel.classList.add('stale');
      var note = document.createElement('p');
      note.textContent = 'Not updated since ' + new Date(M.generated_at * 1000).toLocaleString() +
        ': the search or "report --watch" has stopped, so this page no longer reloads itself.';
      panel.insertBefore(note, panel.firstChild);
      return;
    }
    report.refreshScheduled = true;
    report.timer = setTimeout(function () { saveState(); location.reload(); }, every * 1000);
  }

  function start() {
    var saved = loadState();
    if (saved) {
      table.sort = saved.sort || table.sort;
      table.filter = saved.filter || '';
      table.status = saved.status || '';
    }
    var t0 = performance.now();
    if (document.getElementById('trial-table')) {
      buildRows();
      wireTable();
      renderTable();
    }
    report.tableMs = Math.round(performance.now() - t0);
    var first = saved && byNumber[saved.selected] ? saved.selected : (M.best_n || (N ? T.n[0] : (P.length ? P[0].n : null)));
    report.timings = {};
    var run = function (step) {
      var t0 = performance.now();
      try { step(); } catch (e) { console.error('hks report: ' + step.name + ': ' + e); }
      report.timings[step.name] = Math.round(performance.now() - t0);
    };
    var charts = {'history-chart': historyChart, 'selected-loss': selectedCharts, 'curves-chart': curvesChart,
                  'parallel-chart': parallelChart, 'slices-grid': slicesChart, 'pair-chart': pairChart,
                  'importance-chart': importanceChart};
    var ids = Object.keys(charts).filter(function (id) { return document.getElementById(id); });
    // Many trials: the history and the table first, every other chart when it comes near the screen.
    report.lazy = N > LAZY_FROM && 'IntersectionObserver' in window ? ids.slice(1) : [];
    var chooseFirst = function () {
      if (first !== null && first !== undefined && document.getElementById('selected-title')) select(first, false);
    };
    if (report.lazy.length) {
      chooseFirst();
      run(historyChart);
      var seen = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (!entry.isIntersecting || report.lazy.indexOf(entry.target.id) < 0) return;
          seen.unobserve(entry.target);
          report.lazy = report.lazy.filter(function (id) { return id !== entry.target.id; });
          run(charts[entry.target.id]);
        });
      }, {rootMargin: '300px'});
      report.lazy.forEach(function (id) { seen.observe(document.getElementById(id)); });
      report.drawAll = function () {  // before printing, or to time every chart
        var left = report.lazy;
        report.lazy = [];
        left.forEach(function (id) { seen.unobserve(document.getElementById(id)); run(charts[id]); });
      };
      window.addEventListener('beforeprint', report.drawAll);
    } else {
      ids.forEach(function (id) { run(charts[id]); });
      chooseFirst();
    }
    if (saved && saved.scroll) window.scrollTo(0, saved.scroll);
    var resized = null;
    window.addEventListener('resize', function () { clearTimeout(resized); resized = setTimeout(function () {
      if (report.drawn.indexOf('slices-grid') >= 0) slicesChart();
    }, 300); });
    report.ready = true;
    report.readyAt = performance.now();
    live();
  }
  if (typeof Plotly === 'undefined') { console.error('hks report: the embedded Plotly script did not load'); return; }
  start();
})();
