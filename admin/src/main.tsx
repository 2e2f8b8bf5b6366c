import { render } from 'preact'
import { App } from './app'
import { session } from './session'
import './styles.css'

render(<App />, document.getElementById('app')!)
void session.restore()
